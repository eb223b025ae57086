//! A million messages through one broker: produced with acks=all by librdkafka, read back by a
//! group-free librdkafka consumer from the beginning of each partition — every one, in order
//! per partition, with its exact content. And the same round trip through rdkafka's
//! `BaseConsumer::assign`, which needs a `group.id` (librdkafka refuses `assign` without one)
//! and therefore a broker that answers FindCoordinator.
//!
//! `RAFKA_IT_MESSAGES` changes the count of the first test (default 1,000,000).

mod common;

use common::ffi::BEGINNING;
use common::{assign, consumer, create_topic, partition_consumer, Cluster, Deadline};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 8;
/// The whole test (produce and consume) must finish within this.
const BUDGET: Duration = Duration::from_secs(180);

fn value(partition: i32, seq: u64) -> String {
    format!("p{partition:02}-{seq:09}-payload")
}

/// Counts deliveries and keeps the first error.
#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

#[derive(Clone)]
struct Ctx(Arc<Deliveries>);
impl ClientContext for Ctx {}
impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => {
                self.0.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, m)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                let mut g = self.0.first_error.lock().unwrap_or_else(|e| e.into_inner());
                g.get_or_insert_with(|| format!("partition {}: {e}", m.partition()));
            }
        }
    }
}

#[test]
fn a_million_messages_acks_all_read_back_in_order() {
    let total: u64 = std::env::var("RAFKA_IT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    assert!(
        total % PARTITIONS as u64 == 0,
        "RAFKA_IT_MESSAGES must be a multiple of {PARTITIONS}"
    );
    let per_partition = total / PARTITIONS as u64;
    let deadline = Deadline::after(BUDGET);
    let cluster = Cluster::single();
    let node = &cluster.nodes[0];
    let admin = common::admin(&node.bootstrap());
    create_topic(&admin, node, "million", PARTITIONS, &[]);

    // Produce: message i goes to partition i % P as that partition's (i / P)-th message.
    let stats = Arc::new(Deliveries::default());
    let p: rdkafka::producer::BaseProducer<Ctx> = common::client_config(
        &node.bootstrap(),
        &[
            ("acks", "all"),
            ("linger.ms", "5"),
            ("batch.num.messages", "10000"),
            ("batch.size", "1000000"),
            ("queue.buffering.max.messages", "1000000"),
            ("queue.buffering.max.kbytes", "1048576"),
            ("message.timeout.ms", "120000"),
            ("enable.idempotence", "false"),
        ],
    )
    .create_with_context(Ctx(stats.clone()))
    .expect("producer");
    let t0 = Instant::now();
    for i in 0..total {
        let partition = (i % PARTITIONS as u64) as i32;
        let v = value(partition, i / PARTITIONS as u64);
        let mut record = BaseRecord::<(), str>::to("million")
            .partition(partition)
            .payload(v.as_str());
        loop {
            match p.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    p.poll(Duration::from_millis(10));
                    deadline.check(|| {
                        format!(
                            "producing: {} of {total} delivered",
                            stats.ok.load(Ordering::Relaxed)
                        )
                    });
                }
                Err((e, _)) => panic!("send message {i}: {e}"),
            }
        }
        if i % 10_000 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    p.flush(deadline.remaining()).unwrap_or_else(|e| {
        panic!(
            "flush: {e}; {} of {total} delivered",
            stats.ok.load(Ordering::Relaxed)
        )
    });
    let produced_in = t0.elapsed();
    let failed = stats.failed.load(Ordering::Relaxed);
    assert_eq!(
        failed,
        0,
        "{failed} deliveries failed; first: {:?}",
        stats.first_error.lock().unwrap_or_else(|e| e.into_inner())
    );
    assert_eq!(
        stats.ok.load(Ordering::Relaxed),
        total,
        "every message acknowledged"
    );
    println!(
        "produced {total} messages (acks=all, {PARTITIONS} partitions) in {produced_in:.2?} ({:.0} msg/s)",
        total as f64 / produced_in.as_secs_f64()
    );

    // The log end of each partition is exactly its share.
    let mut c = partition_consumer(
        &node.bootstrap(),
        &[
            ("fetch.max.bytes", "52428800"),
            ("max.partition.fetch.bytes", "10485760"),
            ("queued.max.messages.kbytes", "262144"),
            ("fetch.wait.max.ms", "100"),
        ],
    );
    for partition in 0..PARTITIONS {
        let (lo, hi) = c
            .client
            .fetch_watermarks("million", partition, Duration::from_secs(10))
            .expect("watermarks");
        assert_eq!(
            (lo, hi),
            (0, per_partition as i64),
            "watermarks of partition {partition}"
        );
    }

    // Consume everything from the beginning; each partition's offsets and contents in order.
    for partition in 0..PARTITIONS {
        c.start("million", partition, BEGINNING);
    }
    let mut next = vec![0u64; PARTITIONS as usize];
    let mut seen = 0u64;
    let t1 = Instant::now();
    while seen < total {
        deadline.check(|| format!("consuming: {seen} of {total} read, next offsets {next:?}"));
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap_or_else(|e| panic!("consume after {seen} messages: {e}"));
        let part = m.partition;
        assert!((0..PARTITIONS).contains(&part), "partition {part}");
        let expect = next[part as usize];
        assert_eq!(m.offset, expect as i64, "offset in partition {part}");
        let want = value(part, expect);
        assert_eq!(
            m.payload.as_deref(),
            Some(want.as_bytes()),
            "content at partition {part} offset {expect}"
        );
        next[part as usize] += 1;
        seen += 1;
    }
    let consumed_in = t1.elapsed();
    assert!(
        next.iter().all(|&n| n == per_partition),
        "per partition: {next:?}"
    );
    // Nothing beyond: a further poll brings no message.
    if let Some(Ok(m)) = c.poll(Duration::from_millis(500)) {
        panic!(
            "an extra message at partition {} offset {}",
            m.partition, m.offset
        );
    }
    println!(
        "consumed {total} messages in {consumed_in:.2?} ({:.0} msg/s)",
        total as f64 / consumed_in.as_secs_f64()
    );
}

/// rdkafka's `BaseConsumer` with `assign` and explicit offsets. librdkafka only allows
/// `assign` with a `group.id`, and then looks up the group coordinator (FindCoordinator) even
/// though no group is joined and nothing is committed: the broker must answer that request
/// (an error such as COORDINATOR_NOT_AVAILABLE will do) without stalling the connection.
#[test]
fn base_consumer_assign_reads_back_in_order() {
    const N: u64 = 20_000;
    let deadline = Deadline::after(Duration::from_secs(60));
    let cluster = Cluster::single();
    let node = &cluster.nodes[0];
    let admin = common::admin(&node.bootstrap());
    create_topic(&admin, node, "assigned", 2, &[]);
    let p = common::producer(&node.bootstrap(), &[("acks", "all"), ("linger.ms", "5")]);
    for i in 0..N {
        let partition = (i % 2) as i32;
        let v = value(partition, i / 2);
        p.send(
            BaseRecord::<(), str>::to("assigned")
                .partition(partition)
                .payload(v.as_str()),
        )
        .unwrap_or_else(|(e, _)| panic!("send {i}: {e}"));
        if i % 1000 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    common::flush(&p, Duration::from_secs(30));

    let c = consumer(
        &node.bootstrap(),
        &[
            ("group.id", "rafka-it-assign-only"),
            ("fetch.wait.max.ms", "100"),
        ],
    );
    assign(
        &c,
        "assigned",
        &[(0, Offset::Beginning), (1, Offset::Offset(0))],
    );
    let mut next = [0u64; 2];
    while next.iter().sum::<u64>() < N {
        deadline.check(|| format!("BaseConsumer::assign read {next:?} of {N}"));
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap_or_else(|e| {
            panic!("consume: {e} (with a group.id librdkafka sends FindCoordinator even for assign: does the broker answer it?)")
        });
        let part = m.partition() as usize;
        assert_eq!(m.offset(), next[part] as i64, "offset in partition {part}");
        assert_eq!(m.payload(), Some(value(part as i32, next[part]).as_bytes()));
        next[part] += 1;
    }
}
