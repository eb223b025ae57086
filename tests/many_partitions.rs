//! Many partitions on one node under a small descriptor limit, through the real binary and
//! librdkafka: 3,000 partitions under `ulimit -n 1024` (set for this test process, which the
//! node inherits) are created, each gets one record, all are consumed back, and after a clean
//! restart each takes one more. Every CreateTopics result and every delivery must succeed, the
//! node must never hold more descriptors than its limit allows, and its log must have no
//! "Too many open files". Without the file budget each partition held three files and the node
//! ran out after about 330 partitions.

#![allow(clippy::unwrap_used)]

mod common;

use common::{admin, admin_options, client_config, Cluster, Deadline};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOPICS: usize = 30;
const PER_TOPIC: i32 = 100;
const NOFILE: u64 = 1024;

fn topics() -> Vec<String> {
    (0..TOPICS).map(|i| format!("many-{i:03}")).collect()
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
}

struct Ctx(Arc<Counts>);
impl ClientContext for Ctx {}
impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => self.0.ok.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                eprintln!("delivery failed: {e}");
                self.0.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// One record to every partition; every delivery must succeed.
fn produce_one_to_each(bootstrap: &str) {
    let counts = Arc::new(Counts::default());
    let producer: BaseProducer<Ctx> = client_config(bootstrap, &[])
        .set("message.timeout.ms", "120000")
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "100000")
        .create_with_context(Ctx(counts.clone()))
        .unwrap();
    for t in topics() {
        for p in 0..PER_TOPIC {
            producer
                .send(BaseRecord::to(&t).partition(p).key("k").payload("v"))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        producer.poll(Duration::ZERO);
    }
    let total = (TOPICS as u64) * PER_TOPIC as u64;
    let deadline = Deadline::after(Duration::from_secs(150));
    while counts.ok.load(Ordering::Relaxed) + counts.failed.load(Ordering::Relaxed) < total {
        deadline.check(|| format!("{} of {total} delivered", counts.ok.load(Ordering::Relaxed)));
        producer.poll(Duration::from_millis(50));
    }
    assert_eq!(
        counts.failed.load(Ordering::Relaxed),
        0,
        "failed deliveries"
    );
}

fn consume_all(bootstrap: &str, want: u64) {
    // A group id only because librdkafka's assign wants one; no group is joined.
    let consumer: BaseConsumer = client_config(bootstrap, &[])
        .set("group.id", "many-partitions")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for t in topics() {
        for p in 0..PER_TOPIC {
            tpl.add_partition_offset(&t, p, Offset::Beginning).unwrap();
        }
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Deadline::after(Duration::from_secs(150));
    let mut n = 0;
    while n < want {
        deadline.check(|| format!("{n} of {want} records consumed"));
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            assert!(m.unwrap().payload().is_some());
            n += 1;
        }
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn three_thousand_partitions_under_ulimit_1024() {
    // The node inherits this process's soft limit.
    // SAFETY: getrlimit/setrlimit write and read the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = NOFILE.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    let mut cluster = Cluster::single();
    let bootstrap = cluster.bootstrap();
    let rt = common::runtime();
    let admin = admin(&bootstrap);
    for chunk in topics().chunks(10) {
        let nts: Vec<NewTopic<'_>> = chunk
            .iter()
            .map(|t| NewTopic::new(t, PER_TOPIC, TopicReplication::Fixed(1)))
            .collect();
        let opts = admin_options()
            .request_timeout(Some(Duration::from_secs(60)))
            .operation_timeout(Some(Duration::from_secs(60)));
        for r in rt.block_on(admin.create_topics(&nts, &opts)).unwrap() {
            assert!(r.is_ok(), "{r:?}\n{}", cluster.logs(20));
        }
    }
    produce_one_to_each(&bootstrap);
    let pid = cluster.nodes[0].pid().unwrap();
    let fds = open_fds(pid);
    assert!(fds < NOFILE as usize, "{fds} descriptors");
    consume_all(&bootstrap, (TOPICS as u64) * PER_TOPIC as u64);

    cluster.nodes[0].terminate();
    cluster.nodes[0].start();
    cluster.wait_ready(Duration::from_secs(60));
    produce_one_to_each(&bootstrap);
    let pid = cluster.nodes[0].pid().unwrap();
    let fds = open_fds(pid);
    assert!(fds < NOFILE as usize, "{fds} descriptors after the restart");
    let log = std::fs::read_to_string(cluster.nodes[0].log_file()).unwrap_or_default();
    assert!(!log.contains("Too many open files"), "{}", cluster.logs(20));
}
