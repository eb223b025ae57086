//! Consumer-group bench (`cargo bench --bench groups`): the release `rafka` binary as a process
//! on loopback (as in `benches/e2e.rs`, whose support module starts it), driven by librdkafka.
//!
//! - `rebalance/join_10th_member/{classic,consumer}`, in the same run: nine members of a group
//!   share a 10-partition topic; one iteration is a tenth member subscribing, timed until all
//!   ten consume with their new assignment. Classic (JoinGroup/SyncGroup, eager `range`): every
//!   one of the ten has received its assignment of the new generation (a post-rebalance Assign
//!   callback). Consumer protocol (KIP-848, the broker's `uniform` assignor): every member owns
//!   exactly one partition, counted from the Assign/Revoke callbacks — the member that had two
//!   revoked one and the tenth was given it; the other eight keep consuming throughout and are
//!   told nothing. The tenth then closes (leaves) and the nine settle again, untimed. Members
//!   poll in their own threads and heartbeat every 100 ms (classic: `heartbeat.interval.ms`;
//!   consumer: the broker's `group.consumer.heartbeat.interval.ms`): the existing members learn
//!   of a rebalance from a heartbeat answer, so that interval bounds how fast any broker can do
//!   this (Kafka too).
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
//! `group.initial.rebalance.delay.ms=0` (Kafka's single-node example settings), the consumer
//! protocol's heartbeat interval at 100 ms and session at 6 s (with their minimums lowered to
//! allow it), `RUST_LOG=warn`.

#[path = "e2e/support.rs"]
#[allow(dead_code)]
mod support;

use criterion::{Criterion, Throughput};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::{client_config, Broker};

const GROUP_TOPIC: &str = "bench-grouped";
const COMMIT_TOPIC: &str = "bench-commits";
const MEMBERS: usize = 10;
/// How long any one wait may take before the bench gives up.
const BOUND: Duration = Duration::from_secs(60);

/// A group protocol under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// JoinGroup/SyncGroup, librdkafka's range assignor (eager).
    Classic,
    /// KIP-848's ConsumerGroupHeartbeat, the broker's uniform assignor (incremental).
    Consumer,
}

impl Protocol {
    fn group(self) -> &'static str {
        match self {
            Protocol::Classic => "bench-group",
            Protocol::Consumer => "bench-group-848",
        }
    }
}

/// Counts a member's assignments and the partitions it owns (from the rebalance callbacks).
#[derive(Default)]
struct Counting {
    assigns: AtomicU64,
    owned: AtomicI64,
}

#[derive(Clone, Default)]
struct Ctx(Arc<Counting>);

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.0.owned.fetch_add(tpl.count() as i64, Ordering::SeqCst);
                self.0.assigns.fetch_add(1, Ordering::SeqCst);
            }
            Rebalance::Revoke(tpl) => {
                self.0.owned.fetch_sub(tpl.count() as i64, Ordering::SeqCst);
            }
            Rebalance::Error(_) => {}
        }
    }
}

/// A group member polling in its own thread until dropped (then it closes: LeaveGroup, or a
/// heartbeat with epoch -1).
struct Member {
    counts: Arc<Counting>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    fn join(bootstrap: &str, protocol: Protocol) -> Member {
        let ctx = Ctx::default();
        let counts = ctx.0.clone();
        let mut config = client_config(bootstrap);
        config
            .set("group.id", protocol.group())
            .set("enable.auto.commit", "false");
        match protocol {
            Protocol::Classic => config
                .set("session.timeout.ms", "6000")
                .set("heartbeat.interval.ms", "100")
                .set("partition.assignment.strategy", "range"),
            // The session and heartbeat interval are the broker's (see `main`).
            Protocol::Consumer => config.set("group.protocol", "consumer"),
        };
        let consumer: BaseConsumer<Ctx> = config.create_with_context(ctx).expect("member consumer");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                consumer.subscribe(&[GROUP_TOPIC]).expect("subscribe");
                while !stop.load(Ordering::SeqCst) {
                    let _ = consumer.poll(Duration::from_millis(10));
                }
                // Dropping the consumer closes it: it leaves the group.
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

    fn owned(&self) -> i64 {
        self.counts.owned.load(Ordering::SeqCst)
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

/// Waits until `done` holds, within `BOUND`.
fn wait_until(what: &str, broker: &Broker, done: impl Fn() -> bool, state: impl Fn() -> String) {
    let deadline = Instant::now() + BOUND;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: {}\n{}",
            state(),
            broker.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether the group has settled with the ten: with the classic (eager) protocol every member
/// has received an assignment since `before` (a new generation reaches everyone); with the
/// consumer protocol, where only the members whose partitions change are told anything, every
/// member owns exactly one partition (the tenth has its partition, revoked first from the
/// member that had two).
fn settled(protocol: Protocol, members: &[&Member], before: &[u64]) -> bool {
    match protocol {
        Protocol::Classic => members.iter().zip(before).all(|(m, b)| m.assigns() > *b),
        Protocol::Consumer => members.iter().all(|m| m.owned() == 1),
    }
}

fn state(members: &[&Member]) -> String {
    format!(
        "assigns {:?}, owned {:?}",
        members.iter().map(|m| m.assigns()).collect::<Vec<_>>(),
        members.iter().map(|m| m.owned()).collect::<Vec<_>>()
    )
}

/// Nine members share the `MEMBERS` partitions: each owns at least one, together all.
fn nine_settled(nine: &[Member]) -> bool {
    nine.iter().all(|m| m.owned() >= 1)
        && nine.iter().map(Member::owned).sum::<i64>() == MEMBERS as i64
}

fn bench_rebalance(c: &mut Criterion, broker: &Broker, protocol: Protocol) {
    let bootstrap = broker.bootstrap();
    // Nine members, settled.
    let mut nine: Vec<Member> = Vec::new();
    for _ in 0..MEMBERS - 1 {
        nine.push(Member::join(&bootstrap, protocol));
        let refs: Vec<&Member> = nine.iter().collect();
        wait_until(
            "members joining",
            broker,
            || refs.iter().all(|m| m.owned() >= 1),
            || state(&refs),
        );
    }
    wait_until(
        "nine settled",
        broker,
        || nine_settled(&nine),
        || state(&nine.iter().collect::<Vec<_>>()),
    );
    let name = match protocol {
        Protocol::Classic => "join_10th_member/classic",
        Protocol::Consumer => "join_10th_member/consumer",
    };
    let mut g = c.benchmark_group("rebalance");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(35));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let before: Vec<u64> = nine.iter().map(Member::assigns).collect();
                let started = Instant::now();
                let tenth = Member::join(&bootstrap, protocol);
                let mut refs: Vec<&Member> = nine.iter().collect();
                refs.push(&tenth);
                let mut all_before = before.clone();
                all_before.push(0);
                wait_until(
                    "ten settled",
                    broker,
                    || settled(protocol, &refs, &all_before),
                    || state(&refs),
                );
                total += started.elapsed();
                // Untimed: the tenth leaves and the nine settle (classic: each of them has
                // received the new generation's assignment).
                let left: Vec<u64> = nine.iter().map(Member::assigns).collect();
                drop(tenth);
                let refs: Vec<&Member> = nine.iter().collect();
                wait_until(
                    "nine settled again",
                    broker,
                    || {
                        nine_settled(&nine)
                            && (protocol == Protocol::Consumer || settled(protocol, &refs, &left))
                    },
                    || state(&refs),
                );
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
    // Both protocols' members heartbeat every 100 ms: the classic ones by their own setting,
    // the consumer-protocol ones as the broker tells them (its bounds lowered to allow it).
    let broker = Broker::start_with(
        dir.path(),
        "offsets.topic.replication.factor=1\ngroup.initial.rebalance.delay.ms=0\n\
         group.consumer.heartbeat.interval.ms=100\ngroup.consumer.min.heartbeat.interval.ms=100\n\
         group.consumer.session.timeout.ms=6000\ngroup.consumer.min.session.timeout.ms=6000",
    );
    broker.create_topic_partitions(GROUP_TOPIC, MEMBERS as i32, &[]);
    let mut c = Criterion::default().configure_from_args();
    bench_rebalance(&mut c, &broker, Protocol::Classic);
    bench_rebalance(&mut c, &broker, Protocol::Consumer);
    bench_commits(&mut c, &broker);
    c.final_summary();
}
