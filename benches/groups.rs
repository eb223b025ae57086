//! Consumer-group bench (`cargo bench --bench groups`): the release `rafka` binary as a process
//! on loopback (as in `benches/e2e.rs`, whose support module starts it), driven by librdkafka.
//!
//! - `rebalance/join_10th_member`: nine members of a group are Stable on a 10-partition topic;
//!   one iteration is a tenth member subscribing, timed until every one of the ten has received
//!   its assignment of the new generation (a post-rebalance Assign callback). The tenth then
//!   closes (LeaveGroup) and the nine settle again, untimed. Members poll in their own threads
//!   with `heartbeat.interval.ms=100`: the existing members learn of a rebalance from a
//!   heartbeat answer, so that interval bounds how fast any broker can do this (Kafka too).
//! - `commit/sync_1_partition`: an assign-only consumer (a group id, no membership) commits one
//!   partition's offset synchronously in a loop: one OffsetCommit round trip each, appended to
//!   `__consumer_offsets` (acks=all) before the answer. Throughput in commits.
//! - `commit/async_1_partition`: 999 asynchronous commits of one partition in a row and a
//!   synchronous one, timed until that last one returns (the broker answers a connection's
//!   requests in order, so all 1000 are then answered; librdkafka pipelines them). (Waiting for
//!   librdkafka's commit callbacks instead did not see all of them arrive.)
//! - `commit/sync_100_partitions`: one synchronous OffsetCommit of 100 partitions' offsets per
//!   iteration (one record batch of 100 records). Throughput in partition offsets.
//!
//! The broker runs with `offsets.topic.replication.factor=1` and
//! `group.initial.rebalance.delay.ms=0` (Kafka's single-node example settings), `RUST_LOG=warn`.

#[path = "e2e/support.rs"]
#[allow(dead_code)]
mod support;

use criterion::{Criterion, Throughput};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::{client_config, Broker};

const GROUP_TOPIC: &str = "bench-grouped";
const COMMIT_TOPIC: &str = "bench-commits";
const MEMBERS: usize = 10;
/// How long any one wait may take before the bench gives up.
const BOUND: Duration = Duration::from_secs(60);

/// Counts a member's assignments.
#[derive(Default)]
struct Counting {
    assigns: AtomicU64,
}

#[derive(Clone, Default)]
struct Ctx(Arc<Counting>);

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            self.0.assigns.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A group member polling in its own thread until dropped (then it closes: LeaveGroup).
struct Member {
    counts: Arc<Counting>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    fn join(bootstrap: &str) -> Member {
        let ctx = Ctx::default();
        let counts = ctx.0.clone();
        let consumer: BaseConsumer<Ctx> = client_config(bootstrap)
            .set("group.id", "bench-group")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "100")
            .set("partition.assignment.strategy", "range")
            .create_with_context(ctx)
            .expect("member consumer");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                consumer.subscribe(&[GROUP_TOPIC]).expect("subscribe");
                while !stop.load(Ordering::SeqCst) {
                    let _ = consumer.poll(Duration::from_millis(10));
                }
                // Dropping the consumer closes it: LeaveGroup.
            })
        };
        Member {
            counts,
            stop,
            thread: Some(thread),
        }
    }

    fn assigns(&self) -> u64 {
        self.counts.assigns.load(Ordering::SeqCst)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until every member's assignment count exceeds its count in `before`.
fn wait_assigned(members: &[&Member], before: &[u64], broker: &Broker) {
    let deadline = Instant::now() + BOUND;
    while members.iter().zip(before).any(|(m, b)| m.assigns() <= *b) {
        assert!(
            Instant::now() < deadline,
            "members not assigned: {:?} (before {before:?})\n{}",
            members.iter().map(|m| m.assigns()).collect::<Vec<_>>(),
            broker.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn bench_rebalance(c: &mut Criterion, broker: &Broker) {
    broker.create_topic_partitions(GROUP_TOPIC, MEMBERS as i32, &[]);
    let bootstrap = broker.bootstrap();
    // Nine members, Stable.
    let mut nine: Vec<Member> = Vec::new();
    for _ in 0..MEMBERS - 1 {
        let before: Vec<u64> = nine.iter().map(Member::assigns).collect();
        nine.push(Member::join(&bootstrap));
        let refs: Vec<&Member> = nine.iter().collect();
        let mut before = before;
        before.push(0);
        wait_assigned(&refs, &before, broker);
    }
    let mut g = c.benchmark_group("rebalance");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(35));
    g.bench_function("join_10th_member", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let before: Vec<u64> = nine.iter().map(Member::assigns).collect();
                let started = Instant::now();
                let tenth = Member::join(&bootstrap);
                let mut refs: Vec<&Member> = nine.iter().collect();
                refs.push(&tenth);
                let mut all_before = before.clone();
                all_before.push(0);
                wait_assigned(&refs, &all_before, broker);
                total += started.elapsed();
                // Untimed: the tenth leaves and the nine settle.
                let settled: Vec<u64> = nine.iter().map(Member::assigns).collect();
                drop(tenth);
                let refs: Vec<&Member> = nine.iter().collect();
                wait_assigned(&refs, &settled, broker);
            }
            total
        });
    });
    g.finish();
}

/// An assign-only consumer of `COMMIT_TOPIC` in group `group` (simple commits).
fn committer(bootstrap: &str, group: &str) -> BaseConsumer {
    client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("committer")
}

fn bench_commits(c: &mut Criterion, broker: &Broker) {
    broker.create_topic_partitions(COMMIT_TOPIC, 100, &[]);
    let bootstrap = broker.bootstrap();
    let mut g = c.benchmark_group("commit");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));

    let consumer = committer(&bootstrap, "bench-sync");
    let mut next = 0i64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("sync_1_partition", |b| {
        b.iter(|| {
            next += 1;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(COMMIT_TOPIC, 0, Offset::Offset(next))
                .expect("tpl");
            consumer.commit(&tpl, CommitMode::Sync).expect("commit");
        });
    });

    let consumer = committer(&bootstrap, "bench-async");
    const BURST: u64 = 1000;
    g.throughput(Throughput::Elements(BURST));
    g.bench_function("async_1_partition", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                for i in 0..BURST {
                    next += 1;
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition_offset(COMMIT_TOPIC, 0, Offset::Offset(next))
                        .expect("tpl");
                    // The last one synchronously: the broker answers one connection's
                    // requests in order, so when it returns every earlier commit is answered.
                    let mode = if i + 1 == BURST {
                        CommitMode::Sync
                    } else {
                        CommitMode::Async
                    };
                    consumer.commit(&tpl, mode).expect("commit");
                }
                total += started.elapsed();
            }
            total
        });
    });

    let consumer = committer(&bootstrap, "bench-batch");
    g.throughput(Throughput::Elements(100));
    g.bench_function("sync_100_partitions", |b| {
        b.iter(|| {
            next += 1;
            let mut tpl = TopicPartitionList::new();
            for p in 0..100 {
                tpl.add_partition_offset(COMMIT_TOPIC, p, Offset::Offset(next))
                    .expect("tpl");
            }
            consumer.commit(&tpl, CommitMode::Sync).expect("commit");
        });
    });
    g.finish();
}

fn main() {
    let scratch = std::env::current_dir()
        .expect("cwd")
        .join("target")
        .join("tmp");
    std::fs::create_dir_all(&scratch).expect("target/tmp");
    let dir = tempfile::Builder::new()
        .prefix("groups-bench")
        .tempdir_in(&scratch)
        .expect("scratch dir");
    let broker = Broker::start_with(
        dir.path(),
        "offsets.topic.replication.factor=1\ngroup.initial.rebalance.delay.ms=0",
    );
    let mut c = Criterion::default().configure_from_args();
    bench_rebalance(&mut c, &broker);
    bench_commits(&mut c, &broker);
    c.final_summary();
}
