//! Metadata quorum benches (`cargo bench -p rafka-controller --bench quorum`): three voters
//! in-process on 127.0.0.1 (the same harness as `tests/`, metadata logs in the temp dir, every
//! entry and vote fsynced), requests over the controller listener as a broker sends them.
//!
//! - `image_100k_partitions/*`: an image of 1,000 topics × 100 partitions (RF 3) built from its
//!   records — `load` (records → image), `decode_and_load` (snapshot bytes → image, what a
//!   restart or a snapshot install does), `to_records` (what building a snapshot does) and
//!   `clone` (what the state machine does for every applied entry; images share their parts, so
//!   this copies pointers), `clone_and_apply_one_partition_change` (a clone and one
//!   `PartitionChangeRecord`: a commit's image work). Printed beside: the
//!   snapshot's encoded size, the image's heap bytes (counted by this bench's allocator) and
//!   the RSS growth while loading it (`/proc/self/statm`).
//! - `commit/one_record_tcp`: one AllocateProducerIds (one `ProducerIdsRecord`) from request to
//!   answer, sequential: the commit latency of one metadata record (leader fsync, a follower's
//!   fsync, the apply). Printed beside: p50/p90/p99/p99.9/max over 2,000 sequential commits.
//!   `commit/one_record_in_process` is the same through `QuorumController::handle_request`
//!   (no socket on the client side); `commit/one_record_tcp_100k_partitions` the same with
//!   100,000 partitions in the image (percentiles over 500 printed beside).
//! - `throughput/*`: records per second — `create_topics_1000_partitions` (1,001 records per
//!   command: one CreateTopics of 1,000 partitions, RF 1, each deleted again untimed), `allocate_x16_concurrent` (16
//!   clients at once, one record per command), and `raft_client_write_x32` (32 concurrent
//!   one-record commands straight into `Raft::client_write` on the leader, bypassing the
//!   controller's one-at-a-time event loop: what openraft's own batching allows).
//! - `failover/kill_leader_to_next_commit`: stop the leader, then a broker retries a
//!   registration until one commits. Printed beside: every failover measured.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use rafka_controller::image::MetadataImage;
use rafka_controller::raft_types::MetadataCommand;
use rafka_protocol::messages::{
    delete_topics_request, register_broker_record as rbr, DeleteTopicsRequest, MetadataRecord,
    NoOpRecord, PartitionChangeRecord, PartitionRecord, RegisterBrokerRecord, RequestKind,
    TopicRecord,
};
use rafka_protocol::Uuid;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live heap bytes, to size the image.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System::dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System::realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn percentiles(what: &str, mut samples: Vec<Duration>) {
    if samples.is_empty() {
        return; // Filtered out on the command line.
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{what}: n={} mean={mean:?} p50={:?} p90={:?} p99={:?} p99.9={:?} max={:?}",
        samples.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        samples[samples.len() - 1]
    );
}

// ---------------------------------------------------------------------------------------------
// The image at 100,000 partitions

const TOPICS: u32 = 1_000;
const PARTITIONS_PER_TOPIC: i32 = 100;

fn records_100k() -> Vec<MetadataRecord> {
    let mut out = Vec::with_capacity(3 + (TOPICS as usize) * (1 + PARTITIONS_PER_TOPIC as usize));
    for b in 1..=3 {
        out.push(MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: b,
            incarnation_id: Uuid::from_u128(b as u128),
            broker_epoch: i64::from(b),
            end_points: vec![rbr::BrokerEndpoint {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092 + b as u16,
                security_protocol: 0,
                ..Default::default()
            }],
            rack: None,
            ..Default::default()
        }));
    }
    for t in 0..TOPICS {
        let topic_id = Uuid::from_u128(0x1000_0000_0000_0000_0000_0000_0000_0000 | u128::from(t));
        out.push(MetadataRecord::Topic(TopicRecord {
            name: format!("topic-{t:04}"),
            topic_id,
            ..Default::default()
        }));
        for p in 0..PARTITIONS_PER_TOPIC {
            let first = (p + t as i32) % 3;
            let replicas: Vec<i32> = (0..3).map(|i| (first + i) % 3 + 1).collect();
            out.push(MetadataRecord::Partition(PartitionRecord {
                partition_id: p,
                topic_id,
                isr: replicas.clone(),
                leader: replicas[0],
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
                ..Default::default()
            }));
        }
    }
    out
}

fn image(c: &mut Criterion) {
    let records = records_100k();
    let bytes = MetadataCommand {
        records: records.clone(),
    }
    .to_bytes()
    .expect("encode");
    let (live0, rss0) = (LIVE.load(Ordering::Relaxed), rss_bytes());
    let t = Instant::now();
    let image = MetadataImage::load(&records, 1_000_000).expect("load");
    let once = t.elapsed();
    let (live1, rss1) = (LIVE.load(Ordering::Relaxed), rss_bytes());
    assert_eq!(image.partitions().count(), 100_000);
    println!(
        "image at 100,000 partitions ({} records): snapshot encoding {:.1} MiB; image heap {:.1} MiB ({} B per partition); RSS +{:.1} MiB while loading; first load {once:?}",
        records.len(),
        bytes.len() as f64 / 1048576.0,
        (live1 - live0) as f64 / 1048576.0,
        (live1 - live0) / 100_000,
        rss1.saturating_sub(rss0) as f64 / 1048576.0,
    );
    let mut g = c.benchmark_group("image_100k_partitions");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("load", |b| {
        b.iter(|| black_box(MetadataImage::load(&records, 1).expect("load")))
    });
    g.bench_function("decode_and_load", |b| {
        b.iter(|| {
            let cmd = MetadataCommand::from_bytes(&bytes).expect("decode");
            black_box(MetadataImage::load(&cmd.records, 1).expect("load"))
        })
    });
    g.bench_function("to_records", |b| b.iter(|| black_box(image.to_records())));
    g.bench_function("clone", |b| b.iter(|| black_box(image.clone())));
    // What the state machine does per committed entry: clone the image, apply the entry.
    let topic_id = Uuid::from_u128(0x1000_0000_0000_0000_0000_0000_0000_0000 | 500);
    let change = [MetadataRecord::PartitionChange(PartitionChangeRecord {
        topic_id,
        partition_id: 7,
        leader: 2,
        isr: Some(vec![2, 3]),
        ..Default::default()
    })];
    g.throughput(Throughput::Elements(1));
    g.bench_function("clone_and_apply_one_partition_change", |b| {
        b.iter(|| {
            let mut next = image.clone();
            next.apply_batch_at(image.offset() + 1, &change)
                .expect("apply");
            black_box(next)
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Commits over the quorum

struct Quorum {
    c: Cluster,
    cluster_id: String,
    epoch: i64,
    hb: Option<Heartbeats>,
}

async fn quorum() -> Quorum {
    let options = Options {
        check_images: false,
        ..Options::default()
    };
    let c = Cluster::start_with(3, options).await;
    let cluster_id = c.cluster_id(Duration::from_secs(10)).await;
    let mut client = c.client();
    let epoch = register(&mut client, &cluster_id, 1).await;
    let hb = Heartbeats::start(
        c.voters.clone(),
        1,
        epoch,
        c.history.max_applied(),
        Duration::from_millis(500),
    );
    let leader = c.leader(Duration::from_secs(10)).await;
    wait_until(Duration::from_secs(10), "broker unfenced", || {
        c.node(leader).image().is_active(1)
    })
    .await;
    Quorum {
        c,
        cluster_id,
        epoch,
        hb: Some(hb),
    }
}

impl Quorum {
    async fn leader_connection(&self) -> Connection {
        let leader = self.c.leader(Duration::from_secs(10)).await;
        Connection::connect(&self.c.voters[&leader])
            .await
            .expect("connect")
    }

    async fn stop(mut self) {
        if let Some(hb) = self.hb.take() {
            hb.stop().await;
        }
        self.c.shutdown().await;
    }
}

const DELETE_TOPICS_V: i16 = 6;

fn delete_topic(name: &str) -> RequestKind {
    RequestKind::DeleteTopics(DeleteTopicsRequest {
        topics: vec![delete_topics_request::DeleteTopicState {
            name: Some(name.into()),
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    })
}

async fn allocate_once(conn: &mut Connection, epoch: i64) {
    let r = as_allocate(
        conn.call(ALLOCATE_V, allocate(1, epoch))
            .await
            .expect("allocate"),
    );
    assert_eq!(r.error_code, 0, "{r:?}");
}

fn commit(c: &mut Criterion) {
    let rt = runtime();
    let q = rt.block_on(quorum());
    let mut conn = rt.block_on(q.leader_connection());
    let epoch = q.epoch;
    rt.block_on(async {
        for _ in 0..200 {
            allocate_once(&mut conn, epoch).await;
        }
        let mut samples = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let t = Instant::now();
            allocate_once(&mut conn, epoch).await;
            samples.push(t.elapsed());
        }
        percentiles(
            "commit of one metadata record over TCP, 3 voters, 2,000 sequential",
            samples,
        );
    });
    let mut g = c.benchmark_group("commit");
    g.sample_size(50).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_record_tcp", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    allocate_once(&mut conn, epoch).await;
                }
                t.elapsed()
            })
        })
    });
    let leader = rt.block_on(q.c.leader(Duration::from_secs(10)));
    let controller = q.c.node(leader).quorum_controller().clone();
    g.bench_function("one_record_in_process", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    let r = controller
                        .handle_request(ALLOCATE_V, allocate(1, epoch))
                        .await
                        .expect("answer");
                    assert_eq!(error_code(&r), 0);
                }
                t.elapsed()
            })
        })
    });

    // The same with 100,000 partitions in the image (100 topics of 1,000, RF 1).
    let t = Instant::now();
    rt.block_on(async {
        for i in 0..100 {
            let r = conn
                .call(CREATE_TOPICS_V, create_topic(&format!("big-{i}"), 1000, 1))
                .await
                .expect("call");
            assert_eq!(error_code(&r), 0, "{r:?}");
        }
    });
    println!("created 100,000 partitions in {:?}", t.elapsed());
    rt.block_on(async {
        let mut samples = Vec::with_capacity(500);
        for _ in 0..500 {
            let t = Instant::now();
            allocate_once(&mut conn, epoch).await;
            samples.push(t.elapsed());
        }
        percentiles("commit of one metadata record over TCP, 3 voters, 100,000 partitions in the image, 500 sequential", samples);
    });
    g.sample_size(20);
    g.bench_function("one_record_tcp_100k_partitions", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    allocate_once(&mut conn, epoch).await;
                }
                t.elapsed()
            })
        })
    });
    g.finish();
    rt.block_on(q.stop());
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let q = rt.block_on(quorum());
    let epoch = q.epoch;
    let mut g = c.benchmark_group("throughput");
    g.sample_size(20).measurement_time(Duration::from_secs(10));

    // Many records per command: CreateTopics of 1,000 partitions (a TopicRecord and 1,000
    // PartitionRecords, committed as one entry). Each topic is deleted again, untimed, so that
    // the image stays small (the cost of a large image is measured in `commit`).
    let mut conn = rt.block_on(q.leader_connection());
    let mut n = 0u64;
    g.throughput(Throughput::Elements(1001));
    g.bench_function("create_topics_1000_partitions", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let name = format!("bench-{n}");
                    let t = Instant::now();
                    let r = conn
                        .call(CREATE_TOPICS_V, create_topic(&name, 1000, 1))
                        .await
                        .expect("call");
                    timed += t.elapsed();
                    let r = as_create_topics(r);
                    assert_eq!(r.topics[0].error_code, 0, "{r:?}");
                    let r = conn
                        .call(DELETE_TOPICS_V, delete_topic(&name))
                        .await
                        .expect("call");
                    assert_eq!(error_code(&r), 0, "{r:?}");
                }
                timed
            })
        })
    });

    // Concurrent requests, one record each.
    const CLIENTS: usize = 16;
    let leader = rt.block_on(q.c.leader(Duration::from_secs(10)));
    let addr = q.c.voters[&leader].clone();
    let mut conns: Vec<Connection> = rt.block_on(connect_n(&addr, CLIENTS));
    g.throughput(Throughput::Elements(CLIENTS as u64));
    g.bench_function("allocate_x16_concurrent", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                let mut tasks = Vec::new();
                for mut conn in conns.drain(..) {
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..iters {
                            allocate_once(&mut conn, epoch).await;
                        }
                        conn
                    }));
                }
                for task in tasks {
                    conns.push(task.await.expect("client"));
                }
                t.elapsed()
            })
        })
    });

    // openraft's own batching: concurrent client_write calls on the leader. A write refused
    // because leadership moved is retried on the new leader (and counted).
    const WRITERS: usize = 32;
    let refused = std::sync::Arc::new(AtomicUsize::new(0));
    g.throughput(Throughput::Elements(WRITERS as u64));
    g.bench_function("raft_client_write_x32", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                let mut tasks = Vec::new();
                for _ in 0..WRITERS {
                    // The leader first, the others in case leadership moves.
                    let mut rafts: Vec<_> = q.c.nodes.values().map(|n| n.raft().clone()).collect();
                    let first = q.c.up().iter().position(|id| *id == leader).unwrap_or(0);
                    rafts.rotate_left(first);
                    let refused = refused.clone();
                    tasks.push(tokio::spawn(async move {
                        let mut done = 0;
                        let mut at = 0;
                        while done < iters {
                            let cmd = MetadataCommand {
                                records: vec![MetadataRecord::NoOp(NoOpRecord::default())],
                            };
                            match rafts[at % rafts.len()].client_write(cmd).await {
                                Ok(_) => done += 1,
                                Err(_) => {
                                    refused.fetch_add(1, Ordering::Relaxed);
                                    at += 1;
                                    tokio::time::sleep(Duration::from_millis(5)).await;
                                }
                            }
                        }
                    }));
                }
                for task in tasks {
                    task.await.expect("writer");
                }
                t.elapsed()
            })
        })
    });
    g.finish();
    println!(
        "throughput: {} client_write calls refused (not the leader, or leadership moved) and retried",
        refused.load(Ordering::Relaxed)
    );
    rt.block_on(q.stop());
}

async fn connect_n(addr: &str, n: usize) -> Vec<Connection> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Connection::connect(addr).await.expect("connect"));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Failover

fn failover(c: &mut Criterion) {
    let rt = runtime();
    let mut q = rt.block_on(quorum());
    let cluster_id = q.cluster_id.clone();
    let mut broker_id = 100;
    let mut all = Vec::new();
    let mut g = c.benchmark_group("failover");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1));
    g.bench_function("kill_leader_to_next_commit", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let d = kill_leader_once(&mut q.c, &cluster_id, &mut broker_id).await;
                    all.push(d);
                    total += d;
                }
                total
            })
        })
    });
    g.finish();
    if !all.is_empty() {
        let ms: Vec<u128> = all.iter().map(Duration::as_millis).collect();
        println!("failovers measured (ms, in order): {ms:?}");
    }
    percentiles(
        "failover (leader stopped → next committed write), 3 voters, election 150–300 ms",
        all,
    );
    rt.block_on(q.stop());
}

/// Stops the leader, times until a registration commits on its successor, restarts it and waits
/// for the quorum to be whole again.
async fn kill_leader_once(c: &mut Cluster, cluster_id: &str, broker_id: &mut i32) -> Duration {
    let leader = c.leader(Duration::from_secs(10)).await;
    c.stop(leader).await;
    let t = Instant::now();
    let mut client = c.client();
    client.attempt_timeout = Duration::from_millis(200);
    *broker_id += 1;
    let req: RequestKind = registration(*broker_id, cluster_id);
    let elapsed = loop {
        if let Ok(r) = client.try_once(REGISTRATION_V, req.clone()).await {
            assert_eq!(error_code(&r), 0, "{r:?}");
            break t.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no new leader committed within 30 s"
        );
    };
    c.restart(leader).await;
    let new_leader = c.leader(Duration::from_secs(10)).await;
    let offset = c.node(new_leader).image().offset();
    c.converged(Duration::from_secs(30), offset).await;
    elapsed
}

fn config() -> Criterion {
    Criterion::default().configure_from_args()
}

criterion_group! { name = benches; config = config(); targets = image, commit, throughput, failover }
criterion_main!(benches);
